package events

// DedupKeyOfObject exposes the dedup key of an already decoded object (the
// part of Parse that BenchmarkDedupKey measures) to the external test
// package.
var DedupKeyOfObject = dedupKeyOfObject
