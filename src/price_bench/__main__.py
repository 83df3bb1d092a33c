from price_bench.cli.main import main

main()
