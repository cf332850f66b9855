"""Average the weights of generators of one design into a new generator file.

    python -m keras_deblur.average_weights \
        --weights runs/s7/final_generator.keras,runs/s8/final_generator.keras \
        --output runs/soup.keras

Each `--weights` entry is a preset name or a `.keras` file
(`keras_deblur.models.loading.load_generator`); the output keeps the first
one's design and is an ordinary `.keras` generator.
"""

from absl import app, flags

from keras_deblur.cli import reports_errors


def _define_flags():
    """Defines the flags; only when run as a program (no clash with other CLI modules)."""
    flags.DEFINE_list("weights", None, "Generators to average: preset names or .keras files.")
    flags.DEFINE_string("output", None, "The averaged generator, a .keras file.")
    flags.mark_flags_as_required(["weights", "output"])


@reports_errors(OSError, ValueError)
def main(argv):
    del argv
    from keras_deblur.models.averaging import average_generators
    from keras_deblur.models.loading import load_generator

    FLAGS = flags.FLAGS
    if not FLAGS.output.endswith(".keras"):
        raise ValueError(f"{FLAGS.output}: the output must be a .keras file")
    generators = [load_generator(path) for path in FLAGS.weights]
    mean = average_generators(generators, names=FLAGS.weights)
    generators[0].set_weights(mean)
    generators[0].save(FLAGS.output)
    print(f"Wrote {FLAGS.output}: the mean of {len(generators)} generators")
    return 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
