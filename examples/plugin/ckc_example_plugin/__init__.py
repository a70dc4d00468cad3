"""An example third-party ckc plugin: one pass, added through xDSL's universe.

Installing this package (``pip install -e examples/plugin``) makes the pass
``annotate-op-count`` available to both ``ckc-opt`` and ``xdsl-opt``: the
entry point in pyproject.toml points xDSL at ``UNIVERSE`` below.
"""

from xdsl.universe import Universe


def _annotate_op_count():
    # Imported lazily: the universe is read on every ckc-opt start-up.
    from ckc_example_plugin.annotate_op_count import AnnotateOpCount

    return AnnotateOpCount


UNIVERSE = Universe(all_passes={"annotate-op-count": _annotate_op_count})
