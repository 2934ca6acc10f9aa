"""The worker process: faust app and bulk consumer, batch runner, lag, metrics."""
