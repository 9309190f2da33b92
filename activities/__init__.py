"""Every side effect of a lifecycle. Workflows import only `activities.contracts`."""
