package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tfd-project/tfd/internal/config"
	"github.com/tfd-project/tfd/tfproto"
)

func init() {
	register("check-config", subcommand{summary: "validate a reference-format config file and print what tfd would do with it", run: checkConfig})
}

func checkConfig(args []string) error {
	fset := flag.NewFlagSet("tfd check-config", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: tfd check-config FILE\n\nExits 0 when tfd could serve with FILE, 1 otherwise.")
	}
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return errors.New("check-config needs a file")
	}
	cfg, err := config.LoadFile(fset.Arg(0))
	if err != nil {
		return err
	}
	return describeConfig(os.Stdout, cfg)
}

// describeConfig prints what tfd would do with cfg and returns an error listing
// every problem that would stop it from serving.
func describeConfig(w io.Writer, cfg *config.Config) error {
	var problems []error
	fmt.Fprintf(w, "listen:        %s (TCP and UDP)\n", cfg.ListenAddr())
	fmt.Fprintf(w, "proto:         %q\n", cfg.Proto)
	fmt.Fprintf(w, "hash:          %d bytes\n", len(cfg.Hash))
	if st, err := os.Stat(cfg.DBDir); cfg.DBDir == "" {
		problems = append(problems, errors.New("dbdir is not set"))
	} else if err != nil {
		problems = append(problems, fmt.Errorf("dbdir: %w", err))
	} else if !st.IsDir() {
		problems = append(problems, fmt.Errorf("dbdir %s is not a directory", cfg.DBDir))
	} else {
		fmt.Fprintf(w, "data root:     %s\n", cfg.DBDir)
	}
	if len(cfg.PrivKeyPEM) == 0 {
		problems = append(problems, errors.New("no privkey {…} block"))
	} else if k, err := tfproto.ParsePrivateKeyPEM(cfg.PrivKeyPEM); err != nil {
		problems = append(problems, fmt.Errorf("privkey: %w", err))
	} else if k.N.BitLen() != 2048 {
		problems = append(problems, fmt.Errorf("privkey is RSA-%d; TFProtocol needs RSA-2048", k.N.BitLen()))
	} else {
		fmt.Fprintln(w, "private key:   RSA-2048, valid")
		if len(cfg.PubKeyPEM) > 0 {
			pub, err := tfproto.ParsePublicKeyPEM(cfg.PubKeyPEM)
			switch {
			case err != nil:
				problems = append(problems, fmt.Errorf("pubkey: %w", err))
			case !pub.Equal(&k.PublicKey):
				problems = append(problems, errors.New("pubkey does not match privkey"))
			default:
				fmt.Fprintln(w, "public key:    matches the private key")
			}
		}
	}
	switch {
	case cfg.DefUser != "":
		fmt.Fprintf(w, "mode:          single-user as system user %q\n", cfg.DefUser)
	case cfg.MultiUser():
		fmt.Fprintf(w, "mode:          multi-user, users from %s (LOGIN required)\n", cfg.UserDB)
		if _, err := os.Stat(cfg.UserDB); err != nil {
			problems = append(problems, fmt.Errorf("userdb: %w", err))
		}
	default:
		fmt.Fprintln(w, "mode:          single-user as the daemon's own user")
	}
	if cfg.InJail {
		fmt.Fprintln(w, "injail:        on (INJAIL required after login)")
	}
	if cfg.TLB != "" {
		fmt.Fprintf(w, "tlb pool:      %s\n", cfg.TLB)
		if _, err := os.Stat(cfg.TLB); err != nil {
			fmt.Fprintf(w, "  warning: %v (TLB will answer FAILED 52)\n", err)
		}
	}
	for _, t := range []struct{ key, val string }{{"trp_ipv4", cfg.TRPIPv4}, {"trp_ipv6", cfg.TRPIPv6}, {"trp_dns", cfg.TRPDNS}} {
		if t.val != "" {
			fmt.Fprintf(w, "proxy target:  %s %s (used by tfd proxy)\n", t.key, t.val)
		}
	}
	for _, warn := range cfg.Warnings {
		fmt.Fprintf(w, "warning:       %s\n", warn)
	}
	if len(problems) > 0 {
		return fmt.Errorf("config is not usable:\n%w", errors.Join(problems...))
	}
	fmt.Fprintln(w, "config OK")
	return nil
}
