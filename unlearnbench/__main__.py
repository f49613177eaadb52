from unlearnbench.cli.app import main

main()
