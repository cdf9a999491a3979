// Command bench runs every benchmark of zccadapter and prints the table of
// BENCHMARKS.md. Placeholder until the runner lands.
package main

func main() {}
