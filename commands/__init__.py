"""The `tandem` command line, by audience: `cli.py` holds the success team's commands,
`admin` the operators', `common` what they share."""
