"""Route planning with OR-Tools (and PyVRP where it models the problem): CVRP, VRPTW and binsight's own."""
