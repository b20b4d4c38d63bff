"""Weights from elsewhere: checkpoints of the published VIS-MAE code, and Transformers Swin checkpoints.

Modules, one job each:
    key_mapping  the one key-mapping engine: `KeyRule` tables applied strictly or leniently, `ConversionError`
    load_report  `LoadReport`: what a load did, key by key (every load of foreign weights returns one)
    published    published VIS-MAE checkpoints -> our models (strict), `vis-mae convert`
    swin         Transformers Swin checkpoints -> our encoder (lenient), the ImageNet-baseline initialisation
"""
