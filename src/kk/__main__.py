from kk.cli import main

main()
