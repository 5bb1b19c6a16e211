"""The `flywheel bench` suites and experiments: measure the product, never part of a stage; may import
everything.

One module per suite (bench.suites.SUITES names them); bench.models is the benches' detector (the last
turn's bundle, or a seed model trained through the stage functions); bench.experiment is the measured
flywheel (`flywheel experiment`, on the stage functions). The knobs live in the top-level `bench:` and
`experiment:` sections of params.yaml, so changing one invalidates no stage.
"""
