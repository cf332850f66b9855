"""Averaging the weights of generators of one design (a "model soup" of campaign stages).

Stages of a campaign that start from each other and end with the learning rate
decayed to 0 sit in one basin of the loss; the mean of their weights scores at
least as well as each on the fixed validation set (MODEL_CARD.md, stage 9).
"""

import numpy as np

from keras_deblur.models.loading import weight_shapes


def average_generators(generators, names=None):
    """The element-wise mean of the weights of generators of the same design.

    Args:
        generators: list of `keras.Model`, at least one, with weights of the
            same shapes in the same order.
        names: list of str or None. What errors call each generator (e.g. its
            file). Defaults to the models' names.

    Returns:
        A list of numpy arrays, the mean weights, for `generator.set_weights`.

    Raises:
        ValueError: no generators, or weights that do not match in shape.
    """
    if not generators:
        raise ValueError("average_generators needs at least one generator")
    names = names or [generator.name for generator in generators]
    shapes = weight_shapes(generators[0])
    for generator, name in zip(generators[1:], names[1:], strict=True):
        other = weight_shapes(generator)
        if other != shapes:
            raise ValueError(
                f"{name}: weights do not match {names[0]}'s "
                f"({len(other)} tensors against {len(shapes)}, or other shapes): "
                "only generators of one design can be averaged"
            )
    weights = [generator.get_weights() for generator in generators]
    return [np.mean(np.stack(tensors), axis=0) for tensors in zip(*weights, strict=True)]
