"""Training recipes: the settings ``train`` uses for what its caller leaves out.

Each entry was chosen on ``benchmarks/accuracy.py`` (tasks built from images
the project never tuned to, baselines in the same process); the numbers
are in ``docs/benchmarks.md``. ``"classic"`` is the published fashion recipe, kept
so that it can be reproduced and compared.
"""

CLASSIC = {
    "batch_size": 32,
    "learning_rate": 1e-3,
    "lr_plan": "decay",  # Adam(lr, decay=lr / epochs)
    "augment": {},  # RandomAffine's defaults: ImageDataGenerator's rotation 25, shear, zoom .2
    "mix": 0.0,
    "recolour": 0.0,
    "recolour_split": False,
    "min_updates": None,
    "model_kwargs": {},
}

RECIPES = {
    "classic": CLASSIC,
    # From scratch, small data: 15 epochs of batch 32 are a few hundred updates, so the
    # network was undertrained; twice the updates with a cosine plan, global average
    # pooling, and shifts, zoom and flips without rotation or shear train it
    # (docs/benchmarks.md, the accuracy suite).
    "smallervggnet": {
        "batch_size": 16,
        "learning_rate": 1e-3,
        "lr_plan": "cosine",
        "augment": {"rotation": 0.0, "shift": 0.1, "shear": 0.0, "zoom": 0.1},
        "mix": 0.0,
        # Three quarters of each batch hue-turned with its colour labels unknown,
        # and the other quarter teaching colours only: object labels learn only
        # where colour says nothing of the object, so colour-object pairs never
        # trained on are predicted (docs/benchmarks.md: unseen-pair recall over
        # six seeds, split against unsplit recolouring).
        "recolour": 0.75,
        "recolour_split": True,
        # When epochs are not given, at least this many updates: 75 epochs of 200
        # images are a thousand, too few for photographs (docs/benchmarks.md, "from
        # scratch at train's default epochs"); larger sets reach it within 75 epochs.
        "min_updates": 3000,
        # Lighter dropout between stages: 15 epochs of a few hundred images
        # left the network undertrained (docs/benchmarks.md, six seeds).
        "model_kwargs": {"pooling": "avg", "stage_dropout": 0.1},
    },
}


def resolve_recipe(model_name, recipe=None, **given):
    """The settings of a run: the recipe's, overridden by what the caller gave.

    Args:
        model_name: the registered model's name (its entry is the default
            recipe; models without one use ``"classic"``).
        recipe: a name from ``RECIPES`` to use instead.
        **given: ``batch_size``, ``learning_rate``, ``lr_plan``, ``mix``,
            ``recolour``, ``recolour_split``,
            ``model_kwargs`` as the caller passed them (``None``: not given).

    Returns:
        Dict with every key of the recipe; ``model_kwargs`` merges the
        recipe's with the caller's (the caller's win) and ``recipe`` names
        the entry used.

    Example:
        >>> resolve_recipe("smallervggnet", batch_size=64)["batch_size"]
        64
        >>> resolve_recipe("smallervggnet", recipe="classic")["lr_plan"]
        'decay'
        >>> resolve_recipe("mobilenetv2")["recipe"]
        'classic'
    """
    name = recipe or (model_name if model_name in RECIPES else "classic")
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    settings = {**RECIPES[name], "recipe": name}
    for key, value in given.items():
        if key == "model_kwargs":
            settings[key] = {**settings[key], **(value or {})}
        elif value is not None:
            settings[key] = value
    return settings
