"""One module per `ckc` subcommand: each defines add_arguments(parser) and main(args)."""
