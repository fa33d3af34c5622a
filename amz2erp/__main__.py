from amz2erp.cli import main

main()
