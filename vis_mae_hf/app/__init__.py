"""The vis-mae-hf training application: pretraining, fine-tuning, label-efficiency sweeps, releases, the command line.

It uses the library (`vis_mae_hf` outside this sub-package) and the library never imports it.
"""
