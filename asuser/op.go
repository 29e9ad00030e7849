package asuser

import "context"

// Op names one helper operation. Call sites use the constants, so a typo
// does not compile; the helper answers an unknown Op with an error.
type Op string

// Operations on a workspace.
const (
	OpFSCreate     Op = "fs.create"     // WorkspaceArgs → nothing
	OpFSRemove     Op = "fs.remove"     // WorkspaceArgs → nothing
	OpFSUpload     Op = "fs.upload"     // WorkspaceArgs; a file is handed over (Runner.Open) → UploadResult
	OpFSOpen       Op = "fs.open"       // WorkspaceArgs; a file is handed over → OpenResult
	OpFSZip        Op = "fs.zip"        // ZipArgs; a pipe is handed over → nothing
	OpFSList       Op = "fs.list"       // ListArgs → []Entry
	OpFSDiskUsage  Op = "fs.du"         // ListArgs → []Entry
	OpFSDelete     Op = "fs.delete"     // WorkspaceArgs → DeleteResult
	OpFSMove       Op = "fs.move"       // MoveArgs → nothing
	OpFSGlob       Op = "fs.glob"       // WorkspaceArgs → []string
	OpFSUsage      Op = "fs.usage"      // UsageArgs → int64 (bytes)
	OpFSPrune      Op = "fs.prune"      // PruneArgs → nothing
	OpFSCleanTemps Op = "fs.cleantemps" // CleanTempsArgs → int (files removed)
)

// Operations on a user's secret directory.
const (
	OpSecretsWrite  Op = "secrets.write"  // SecretsWriteArgs → nothing
	OpSecretsDelete Op = "secrets.delete" // SecretsDeleteArgs → SecretsDeleteResult
	OpSecretsRemove Op = "secrets.remove" // SecretsDirArgs → int (secrets removed)
	OpSecretsRead   Op = "secrets.read"   // SecretsDirArgs → []Secret
)

// Operations on jobs and programs.
const (
	OpJobStart         Op = "job.start"         // JobStartArgs → JobStartResult
	OpJobStatus        Op = "job.status"        // JobStatusArgs → map[id]JobState
	OpJobCancel        Op = "job.cancel"        // JobCancelArgs → nothing
	OpJobLogs          Op = "job.logs"          // JobLogsArgs → JobLogsResult
	OpJobReadExit      Op = "job.readexit"      // JobReadExitArgs → map[id]ExitInfo
	OpJobSubmit        Op = "job.submit"        // BatchSubmitArgs → BatchSubmitResult
	OpJobSubmitMany    Op = "job.submitmany"    // BatchSubmitManyArgs → []BatchSubmitOutcome
	OpJobSubmitCluster Op = "job.submitcluster" // BatchSubmitClusterArgs → []BatchSubmitOutcome
	OpJobFollow        Op = "job.follow"        // JobFollowArgs → map[id]FollowResult
	OpExec             Op = "exec"              // ExecArgs → ExecResult
)

// Ops lists every operation, for the helper's dispatch test.
func Ops() []Op {
	return []Op{
		OpFSCreate, OpFSRemove, OpFSUpload, OpFSOpen, OpFSZip, OpFSList, OpFSDiskUsage,
		OpFSDelete, OpFSMove, OpFSGlob, OpFSUsage, OpFSPrune, OpFSCleanTemps,
		OpSecretsWrite, OpSecretsDelete, OpSecretsRemove, OpSecretsRead,
		OpJobStart, OpJobStatus, OpJobCancel, OpJobLogs, OpJobReadExit, OpJobSubmit, OpJobSubmitMany, OpJobSubmitCluster, OpJobFollow, OpExec,
	}
}

// Caller runs one operation as a user and decodes its result into result
// (which may be nil). *Runner is the real one; tests use fakes. Everything
// a backend does to a user's files, or in the batch system on the user's
// behalf, goes through a Caller.
type Caller interface {
	Call(ctx context.Context, acct Account, op Op, args, result any) error
}

// Opener is a Caller that can also run operations that hand a file over
// (uploads and downloads).
type Opener interface {
	Caller
	Open(ctx context.Context, acct Account, op Op, args any) (*Session, error)
}

// call is the typed form of Caller.Call that every wrapper below uses.
func call[R any](ctx context.Context, c Caller, acct Account, op Op, args any) (R, error) {
	var res R
	err := c.Call(ctx, acct, op, args, &res)
	return res, err
}

// Exec runs a program as the user.
func Exec(ctx context.Context, c Caller, acct Account, a ExecArgs) (ExecResult, error) {
	return call[ExecResult](ctx, c, acct, OpExec, a)
}

// CreateWorkspace makes a workspace and its jobs directory as the user.
func CreateWorkspace(ctx context.Context, c Caller, acct Account, a WorkspaceArgs) error {
	return c.Call(ctx, acct, OpFSCreate, a, nil)
}

// RemoveWorkspace removes a workspace and its jobs directory as the user.
func RemoveWorkspace(ctx context.Context, c Caller, acct Account, a WorkspaceArgs) error {
	return c.Call(ctx, acct, OpFSRemove, a, nil)
}

// List lists a workspace, or the files matching a pattern in it.
func List(ctx context.Context, c Caller, acct Account, a ListArgs) ([]Entry, error) {
	return call[[]Entry](ctx, c, acct, OpFSList, a)
}

// DiskUsage reports disk usage in a workspace as `reana-client du` shows it.
func DiskUsage(ctx context.Context, c Caller, acct Account, a ListArgs) ([]Entry, error) {
	return call[[]Entry](ctx, c, acct, OpFSDiskUsage, a)
}

// Delete removes the files of a workspace that a path or pattern names.
func Delete(ctx context.Context, c Caller, acct Account, a WorkspaceArgs) (DeleteResult, error) {
	return call[DeleteResult](ctx, c, acct, OpFSDelete, a)
}

// Move renames a file or directory inside a workspace.
func Move(ctx context.Context, c Caller, acct Account, a MoveArgs) error {
	return c.Call(ctx, acct, OpFSMove, a, nil)
}

// Glob lists the files of a workspace that a pattern matches.
func Glob(ctx context.Context, c Caller, acct Account, a WorkspaceArgs) ([]string, error) {
	return call[[]string](ctx, c, acct, OpFSGlob, a)
}

// Usage measures whole trees (workspaces) in bytes.
func Usage(ctx context.Context, c Caller, acct Account, a UsageArgs) (int64, error) {
	return call[int64](ctx, c, acct, OpFSUsage, a)
}

// CleanTemps removes the temporary files of uploads whose helper died
// (no longer locked, and not new) from whole workspaces.
func CleanTemps(ctx context.Context, c Caller, acct Account, a CleanTempsArgs) (int, error) {
	return call[int](ctx, c, acct, OpFSCleanTemps, a)
}

// Prune removes what is neither input nor output from a workspace.
func Prune(ctx context.Context, c Caller, acct Account, a PruneArgs) error {
	return c.Call(ctx, acct, OpFSPrune, a, nil)
}

// StartJob writes a local job's files and, with Detach, starts it.
func StartJob(ctx context.Context, c Caller, acct Account, a JobStartArgs) (JobStartResult, error) {
	return call[JobStartResult](ctx, c, acct, OpJobStart, a)
}

// JobStatus probes many local jobs in one helper.
func JobStatus(ctx context.Context, c Caller, acct Account, a JobStatusArgs) (map[string]JobState, error) {
	return call[map[string]JobState](ctx, c, acct, OpJobStatus, a)
}

// CancelJob stops a local job: TERM to its process group, KILL after Grace.
func CancelJob(ctx context.Context, c Caller, acct Account, a JobCancelArgs) error {
	return c.Call(ctx, acct, OpJobCancel, a, nil)
}

// JobLogs reads a job's output file, or its tail.
func JobLogs(ctx context.Context, c Caller, acct Account, a JobLogsArgs) (JobLogsResult, error) {
	return call[JobLogsResult](ctx, c, acct, OpJobLogs, a)
}

// ReadExits reads the exit-status files of many job directories.
func ReadExits(ctx context.Context, c Caller, acct Account, a JobReadExitArgs) (map[string]ExitInfo, error) {
	return call[map[string]ExitInfo](ctx, c, acct, OpJobReadExit, a)
}

// SubmitJob writes a batch job's files and submits it, at most once per
// claim (see BatchSubmitArgs).
func SubmitJob(ctx context.Context, c Caller, acct Account, a BatchSubmitArgs) (BatchSubmitResult, error) {
	return call[BatchSubmitResult](ctx, c, acct, OpJobSubmit, a)
}

// SubmitJobs submits several batch jobs in one helper, one after the
// other, each exactly as SubmitJob would (its own claim and recorded id),
// and answers with one outcome per job, in order.
func SubmitJobs(ctx context.Context, c Caller, acct Account, a BatchSubmitManyArgs) ([]BatchSubmitOutcome, error) {
	return call[[]BatchSubmitOutcome](ctx, c, acct, OpJobSubmitMany, a)
}

// SubmitCluster submits several batch jobs of one user with one run of
// the submission command (see BatchSubmitClusterArgs), each job claimed
// and its id recorded in its own directory, and answers with one outcome
// per job, in order.
func SubmitCluster(ctx context.Context, c Caller, acct Account, a BatchSubmitClusterArgs) ([]BatchSubmitOutcome, error) {
	return call[[]BatchSubmitOutcome](ctx, c, acct, OpJobSubmitCluster, a)
}

// FollowLogs reads what was appended to many logs since their offsets.
func FollowLogs(ctx context.Context, c Caller, acct Account, a JobFollowArgs) (map[string]FollowResult, error) {
	return call[map[string]FollowResult](ctx, c, acct, OpJobFollow, a)
}

// OpenUpload starts an upload: the helper creates a temporary file as the
// user and hands it over; End(true, &UploadResult{}) moves it into place.
func OpenUpload(ctx context.Context, o Opener, acct Account, a WorkspaceArgs) (*Session, error) {
	return o.Open(ctx, acct, OpFSUpload, a)
}

// OpenFile opens a workspace file (or directory, for a zip) as the user
// and hands it over; End's result is an OpenResult.
func OpenFile(ctx context.Context, o Opener, acct Account, a WorkspaceArgs) (*Session, error) {
	return o.Open(ctx, acct, OpFSOpen, a)
}

// OpenZip has the helper write a zip of some paths into a pipe it hands over.
func OpenZip(ctx context.Context, o Opener, acct Account, a ZipArgs) (*Session, error) {
	return o.Open(ctx, acct, OpFSZip, a)
}
