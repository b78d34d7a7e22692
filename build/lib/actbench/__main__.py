from actbench.cli import main

main()
