from podium.cli.entry import main

main()
