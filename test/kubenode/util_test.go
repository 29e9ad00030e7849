package kubenode_test

import (
	"os"
	"strconv"
	"syscall"
)

func owner(fi os.FileInfo) string {
	return strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
}
