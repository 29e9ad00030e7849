// Package apptainer is the Apptainer stand-in of the tests. Its checks
// are built only with the e2e tag.
package apptainer
