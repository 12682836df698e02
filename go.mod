module github.com/libmemcached-go/libmemcached

go 1.22

require (
	github.com/kisielk/og-rek v1.3.0
	github.com/nlpodyssey/gopickle v0.3.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/aristanetworks/gomap v0.0.0-20230726210543-f4e41046dced // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/exp v0.0.0-20230725093048-515e97ebf090 // indirect
	golang.org/x/text v0.14.0 // indirect
)
