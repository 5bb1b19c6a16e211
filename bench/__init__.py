"""The `flywheel bench` suites: measure the product, never part of a stage; may import everything.

One module per suite (bench.suites.SUITES names them); bench.models is the benches' detector (the
last turn's bundle, or a seed model trained through the stage functions). Their knobs live in the
top-level `bench:` section of params.yaml, one subsection per suite, so changing one invalidates no stage.
"""
