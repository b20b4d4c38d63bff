"""The demo page of `vis-mae demo` and of a Hub Space: a Gradio app over `VisMaePredictor`, the reconstruction
picture and the medical loaders.

- `views.py`: what the page shows for a model, an input and the settings (no Gradio; the tests call it);
- `page.py`: the Gradio Blocks and their callbacks (`build_demo(model)`, imported only with the `app` extra);
- `examples.py`: the bundled real examples (pydicom-data's head CT and ultrasound, nilearn's MNI152 template).

Gradio is imported by `page.py` alone, so importing this package (and `vis-mae demo --help`) works without it.
"""

APP_EXTRA_HINT = 'The demo page needs Gradio: pip install "vis-mae-hf[app]".'


def build_demo(model_name: str, *, device=None):
    """The Gradio Blocks of the demo page for a model folder or Hub repo id (not launched); ImportError naming the
    `app` extra without Gradio."""
    try:
        from .page import build_demo as build
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        raise ImportError(APP_EXTRA_HINT) from error
    return build(model_name, device=device)


__all__ = ["APP_EXTRA_HINT", "build_demo"]
