"""``python -m heattrack``: the same command line as the ``heattrack`` script."""

from heattrack.cli import app

if __name__ == "__main__":
    app(prog_name="heattrack")
