"""Analysis: what a captured graph says about its gradients.

One module per analysis, each reading the graph model only (plus, for live
captures, the objects it was captured from):

* :mod:`.around`: snapshots before and after one ``backward()`` call;
* :mod:`.diff`: node-by-node differences between two graphs;
* :mod:`.check`: the checker that names the node and the fault of a wrong gradient;
* :mod:`.gradcheck`: gradients of a function against central finite differences;
* :mod:`.trace`: each ``_backward`` call of a backward pass and what it added;
* :mod:`.record`: the engine's own ``_backward`` calls, recorded while the
  user's code runs (a profiling hook), which check and trace use as evidence;
* :mod:`.exam`: a report card for a whole engine, a battery of graphs built
  with its own class and run in a worker process, graded by check and
  finite differences;
* :mod:`.replay`: the reference forward values and gradients from the op table,
  shared by the others; :mod:`.probe`: calling a live node's own ``_backward``.
"""
