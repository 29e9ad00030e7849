package asuser

import "time"

// WorkspaceArgs names a workspace and, for some operations, a path in it.
type WorkspaceArgs struct {
	Workspace string `json:"workspace"`
	JobsDir   string `json:"jobs_dir,omitempty"`
	Path      string `json:"path,omitempty"`
}

// Entry is one file or directory of a listing.
type Entry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	IsDir   bool      `json:"is_dir"`
}

// ListArgs asks for a listing or a disk usage report.
type ListArgs struct {
	Workspace string              `json:"workspace"`
	Pattern   string              `json:"pattern,omitempty"`
	Search    map[string][]string `json:"search,omitempty"`
	Summarize bool                `json:"summarize,omitempty"`
}

// DeleteResult is REANA's answer shape for rm.
type DeleteResult struct {
	Deleted map[string]int64  `json:"deleted"`
	Failed  map[string]string `json:"failed"`
}

// MoveArgs renames a file or directory inside a workspace.
type MoveArgs struct {
	Workspace string `json:"workspace"`
	Source    string `json:"source"`
	Target    string `json:"target"`
}

// ZipArgs asks for a zip of some paths of a workspace.
type ZipArgs struct {
	Workspace string   `json:"workspace"`
	Paths     []string `json:"paths"`
}

// OpenResult describes a file handed over by fs.open.
type OpenResult struct {
	Size  int64 `json:"size"`
	IsDir bool  `json:"is_dir"`
}

// UploadResult reports a committed upload: its size and the size of the
// regular file it replaced (0 if none), so that an overwrite is charged
// only the difference.
type UploadResult struct {
	Size     int64 `json:"size"`
	Replaced int64 `json:"replaced"`
}

// UsageArgs asks for the disk usage of whole trees.
type UsageArgs struct {
	Paths []string `json:"paths"`
}

// CleanTempsArgs names the workspaces to rid of orphaned upload files.
type CleanTempsArgs struct {
	Workspaces []string `json:"workspaces"`
}

// PruneArgs asks to remove what is neither input nor output.
type PruneArgs struct {
	Workspace      string   `json:"workspace"`
	Keep           []string `json:"keep"`
	IncludeInputs  bool     `json:"include_inputs"`
	IncludeOutputs bool     `json:"include_outputs"`
	Inputs         []string `json:"inputs"`
	Outputs        []string `json:"outputs"`
}
