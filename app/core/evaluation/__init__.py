"""Evaluation: how well the desk routes, retrieves and answers a file of labelled questions.

- `facts`: does an answer state a labelled fact, and which files does it cite (shared with bench/);
- `metrics`: the measures, as pure functions (precision/recall/F1, hit@k, MRR, token F1, percentiles, cost);
- `report`: a run's report built, saved, loaded and compared with an earlier one;
- `run`: one run: the batch routing and retrieval pass, then the answers through the real pipeline.

The top layer of the core: it drives a `Desk` and no part below imports it.
"""
