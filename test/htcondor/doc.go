// Package htcondor is the HTCondor stand-in of the tests (standin.py
// behind bin/condor_*). Its checks are built only with the e2e tag.
package htcondor
