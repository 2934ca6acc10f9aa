"""The worker process: faust app and bulk consumer, batch runner, written offsets, lag, metrics."""
