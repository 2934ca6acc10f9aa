"""The worker process: faust app, batch runner, written offsets, consumer lag, metrics, wiring."""
