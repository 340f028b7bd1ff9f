package config_test

import (
	"errors"
	"fmt"

	"kazasu/daemon/config"
)

func Example() {
	_, err := config.Parse("kazasud.toml", []byte("version = 1\nterminal_id = \"kz-1\"\ncolour = \"blue\"\n"))
	var es config.Errors
	if errors.As(err, &es) {
		fmt.Println(es[0])
	}
	c := config.Default()
	fmt.Println(c.Readers[0].Name, c.Readers[0].URI, c.Relay.URL)
	// Output:
	// config: kazasud.toml:3: colour: unknown key
	// sim0 sim:mynumber https://127.0.0.1:8443
}
