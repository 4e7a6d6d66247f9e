// compose-check loads compose files the way Docker Compose v2 does (compose-go, the reference implementation it is
// built on): schema validation, interpolation from an env file, normalization and the consistency checks (every
// depends_on, config, volume and network a service names exists). Exit 1 on the first file it rejects.
//
//	go run . -env-file ../env.example ../../../docker-compose.yml ../../../docker-compose.ha.yml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env-file", "", "the variables to interpolate (only these: the caller's environment is ignored)")
	flag.Parse()
	if *envFile == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-check -env-file FILE COMPOSE_FILE...")
		os.Exit(2)
	}
	failed := false
	for _, file := range flag.Args() {
		if err := check(file, *envFile); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func check(file, envFile string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	options, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithConsistency(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	replicas := 0
	for _, service := range project.Services {
		if service.Deploy != nil && service.Deploy.Replicas != nil {
			replicas += *service.Deploy.Replicas
		} else {
			replicas++
		}
	}
	names := project.ServiceNames()
	sort.Strings(names)
	fmt.Printf("%s: valid (project %s: %d services, %d containers, %d configs, %d volumes)\n",
		filepath.Base(file), project.Name, len(names), replicas, len(project.Configs), len(project.Volumes))
	return nil
}
