package agento.commissioning.routing_test

import data.agento.commissioning.routing

schedule := {
	"trip_voltage": {"expected": 480, "tolerance": 5},
	"trip_delay_ms": {"expected": 200, "tolerance": 10},
}

ready := {
	"procore": {"punch_items_open_bess": []},
	"protection_settings_schedule": schedule,
	"test_results": [
		{"parameter": "trip_voltage", "value": 482},
		{"parameter": "trip_delay_ms", "value": 195},
	],
}

test_allows_when_closed_and_within_tolerance if {
	routing.allow with input as ready
	count(routing.reason) == 0 with input as ready
}

test_tolerance_boundary_is_inclusive if {
	routing.allow with input as object.union(ready, {"test_results": [{"parameter": "trip_voltage", "value": 485}]})
}

test_denies_open_punch_items if {
	inp := object.union(ready, {"procore": {"punch_items_open_bess": [{"id": 17}]}})
	not routing.allow with input as inp
	routing.reason == {"punch items still open": true} with input as inp
}

test_denies_out_of_tolerance if {
	inp := object.union(ready, {"test_results": [{"parameter": "trip_voltage", "value": 490}]})
	not routing.allow with input as inp
	routing.reason == {"test result outside tolerance": true} with input as inp
}

test_denies_with_both_reasons if {
	inp := {
		"procore": {"punch_items_open_bess": [{"id": 3}]},
		"protection_settings_schedule": schedule,
		"test_results": [{"parameter": "trip_delay_ms", "value": 260}],
	}
	not routing.allow with input as inp
	routing.reason == {"punch items still open": true, "test result outside tolerance": true} with input as inp
}

test_unknown_parameter_is_not_within_tolerance if {
	inp := object.union(ready, {"test_results": [{"parameter": "unlisted", "value": 1}]})
	not routing.allow with input as inp
}
