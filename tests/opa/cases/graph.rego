package compat.graph

g := {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": ["a"], "f": ["f"]}
reachable_from_a := graph.reachable(g, ["a"])
reachable_from_set := graph.reachable(g, {"e"})
reachable_cycle := graph.reachable(g, ["f"])
reachable_unknown := graph.reachable(g, ["zz"])
reachable_sets_as_edges := graph.reachable({"x": {"y"}, "y": set()}, ["x"])
paths_from_a := graph.reachable_paths(g, ["a"])
paths_from_e := graph.reachable_paths(g, {"e"})
paths_cycle := graph.reachable_paths({"p": ["q"], "q": ["p"]}, ["p"])
walk_pairs := [[path, value] | walk({"a": [1, {"b": 2}]}, [path, value])]
walk_leaves := {path | walk({"x": {"y": 1}, "z": [true]}, [path, value]); not is_object(value); not is_array(value)}
walk_set := [[p, v] | walk({1, 2}, [p, v])]
walk_count := count([1 | walk(data.tree, _)])
