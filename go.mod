module github.com/tfd-project/tfd

go 1.26.0

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.49.0
)

require github.com/fsnotify/fsnotify v1.10.1 // indirect
