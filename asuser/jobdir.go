package asuser

// File names inside a job directory. The job script (batch/jobscript)
// writes them and the helper reads them, so both sides take them from here.
const (
	ScriptFile  = "job.sh"
	CommandFile = "command"
	OutputFile  = "output.log" // stdout and stderr, interleaved as they happened
	ExitFile    = "exit"       // the command's exit status, decimal, one line
	PIDFile     = "pid"        // the script's pid, for the local backend
)
