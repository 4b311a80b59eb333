from sb3_iql.zoo import main

main()
