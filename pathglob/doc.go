// Package pathglob matches key paths against subscription and grant
// patterns.
//
// A key path is a '/'-separated list of segments ("world/player/7"). A
// pattern is a '/'-separated list of segment patterns:
//
//   - "**" matches zero or more whole segments;
//   - "*" matches exactly one segment (of any content, even empty);
//   - a segment containing '*' among other characters ("player*", "*.png")
//     matches one segment, each '*' standing for any run of characters
//     that stays inside the segment;
//   - any other segment matches itself literally.
//
// A pattern must match the whole path: "world" matches "world" only, and
// "world/**" matches "world" and everything below it. These are the
// semantics of the public NodalMerge reference (its server-side
// subscription filter); see DESIGN.md for the one place where this package
// is stricter.
//
// Patterns are compiled once (Compile) and matched without allocating, so
// the data plane can filter every relayed node against every session's
// subscription.
package pathglob
