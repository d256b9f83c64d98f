// Package bench compares fofi with the sequential loop, the fan-out / fan-in
// code people write by hand and its peer libraries (errgroup, conc, pond,
// ants, rill, lo). It has no exported API: the contestants, the correctness
// test and the benchmarks are in its _test.go files, and cmd/chart draws the
// benchmark results. See README.md and ../docs/benchmarks.md.
//
// It is a module of its own so that the library's go.mod needs none of the
// peers.
package bench
