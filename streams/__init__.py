"""Stream processors' pure logic: evaluation, ranking, dispatch decisions and state folds."""
