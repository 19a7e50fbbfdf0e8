# Gates whether the BESS commissioning workflow may route a report for
# approval: every punch-list item against the BESS scope is closed, and every
# test result is within the protection settings schedule's tolerance.
# When routing is refused, `reason` says why.
#
# This is the policy of the "Why we built Agento on Temporal and OPA" note,
# with one change: its helper rule `test_results_within_tolerance` is named
# `results_within_tolerance` here, because `opa test` runs every rule whose
# name starts with `test_` as a test, in every file it loads, and that helper
# is undefined without input. Warden runs as tests only the `test_` rules of
# `*_test.rego` files, so the note's policy also activates unchanged (see
# tests/fixtures/seed_001_routing.rego).
package agento.commissioning.routing

default allow := false

allow if {
	no_open_punch_items
	results_within_tolerance
}

no_open_punch_items if {
	count(input.procore.punch_items_open_bess) == 0
}

results_within_tolerance if {
	every result in input.test_results {
		spec := input.protection_settings_schedule[result.parameter]
		abs(result.value - spec.expected) <= spec.tolerance
	}
}

reason["punch items still open"] if {
	not no_open_punch_items
}

reason["test result outside tolerance"] if {
	not results_within_tolerance
}
