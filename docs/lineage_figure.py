"""Draw the campaign's lineage: each stage's gains against the CPU hours behind it.

    python docs/lineage_figure.py --csv docs/model_card/lineage.csv \
        --output docs/model_card/lineage.png

The CSV holds one row per stage (numbers from MODEL_CARD.md's tables): total
steps and CPU minutes of its lineage, gains on the fixed validation crops and on
the evaluate CLI's whole photos. The gate (+1.0 dB) is drawn for reference.
"""

import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Markers only: the stages branch (17 and 18 both start from 16), so a line through
# them in table order would join runs that never followed each other.
SERIES = (
    ("evaluate_short", "evaluate CLI, short shakes", "tab:blue", "o"),
    ("evaluate_long", "evaluate CLI, long shakes", "tab:red", "o"),
    ("crops_short", "fixed crops, short shakes", "tab:blue", "s"),
    ("crops_long", "fixed crops, long shakes", "tab:red", "s"),
    ("crops_unblurred", "fixed crops, unblurred", "tab:gray", "s"),
)


def _hours(rows):
    return [float(row["cpu_minutes_total"]) / 60 for row in rows]


def _values(rows, key):
    return [float(row[key]) for row in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    with open(args.csv, newline="") as file:
        rows = list(csv.DictReader(file))
    stages = [row for row in rows if not row["stage"].startswith("soup")]
    soups = [row for row in rows if row["stage"].startswith("soup")]
    figure, axis = plt.subplots(figsize=(11, 5))
    for key, label, colour, marker in SERIES:
        axis.plot(
            _hours(stages), _values(stages, key), marker, color=colour, label=label, alpha=0.8
        )
        axis.plot(_hours(soups), _values(soups, key), "*", color=colour, markersize=12)
    for row in rows:
        weight = "bold" if row["shipped"] == "yes" else "normal"
        position = (_hours([row])[0], float(row["evaluate_long"]))
        offset = (0, 12) if row in soups else (0, -14)
        axis.annotate(
            row["stage"],
            position,
            fontsize=8,
            xytext=offset,
            textcoords="offset points",
            ha="center",
            weight=weight,
        )
    axis.axhline(1.0, color="tab:blue", lw=0.8, ls="--", label="gate, short shakes (+1.0 dB)")
    axis.axhline(0.7, color="tab:red", lw=0.8, ls="--", label="gate, long shakes (+0.7 dB)")
    axis.axhline(0.0, color="gray", lw=0.5)
    axis.set_xlabel(
        "CPU hours of the lineage (2-core AMD EPYC; float32 to stage 10, "
        "mixed bf16 from 12b to 28, float32 on AVX2 at 31)"
    )
    axis.set_ylabel("dB over the blurred input")
    axis.set_title(
        "campaign lineage: each stage's final generator (shipped in bold; star: weight average)"
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(args.output, dpi=100)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
