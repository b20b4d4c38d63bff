"""Training arguments the user leaves unset take their values from `vis_mae_hf.recipes`, the one table of published
and demo recipes; pretraining and fine-tuning fill them the same way, and their `--help` quotes the table."""

from __future__ import annotations

import dataclasses

from ..recipes import Recipe, get_recipe

# Argument fields named as the `Recipe` fields they default to (every field an arguments class has and leaves None).
RECIPE_FIELDS = (
    "image_size",
    "num_train_epochs",
    "warmup_epochs",
    "per_device_train_batch_size",
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "decay_norms_and_biases",
)


def with_recipe_defaults(arguments, recipe: Recipe):
    """A copy of the `arguments` dataclass in which every recipe field left None holds the recipe's value."""
    unset = {
        field.name: getattr(recipe, field.name)
        for field in dataclasses.fields(arguments)
        if field.name in RECIPE_FIELDS and getattr(arguments, field.name) is None
    }
    return dataclasses.replace(arguments, **unset)


def recipe_option(name: str, tasks: tuple[str, ...], help_text: str = ""):
    """A dataclass field defaulting to None (the recipe's value), whose help quotes the recipe table for `tasks`."""
    if name not in RECIPE_FIELDS:
        raise ValueError(f"{name!r} is not a recipe field; expected one of {', '.join(RECIPE_FIELDS)}.")
    return dataclasses.field(default=None, metadata={"help": f"{help_text} {recipe_default_help(name, tasks)}".strip()})


def recipe_default_help(name: str, tasks: tuple[str, ...]) -> str:
    """`Default: the recipe (<its values for tasks, published then demo>).`, for the help of any option the recipe
    table fills (a `Recipe` attribute `name`)."""
    published = [getattr(get_recipe(task), name) for task in tasks]
    demo = [getattr(get_recipe(task, demo=True), name) for task in tasks]

    def listed(values: list) -> str:
        if len(set(values)) == 1:  # one value for every task
            return _shown(values[0])
        return " / ".join(f"{task} {_shown(value)}" for task, value in zip(tasks, values))

    values = listed(published) if published == demo else f"{listed(published)}; demo {listed(demo)}"
    return f"Default: the recipe ({values})."


def _shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)
