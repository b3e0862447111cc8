from cli.main import main

if __name__ == "__main__":  # not when a worker process (spawned) imports the main module
    main()
