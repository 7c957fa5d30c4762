package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/kms"
)

// projectFlag adds --project (and --projectId, the spelling of the other
// commands, hidden) bound to p.
func projectFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "project", "", "project ID")
	cmd.Flags().StringVar(p, "projectId", "", "project ID")
	cmd.Flags().MarkHidden("projectId")
}

// keyRef names a key by ID (the first argument) or by --name and --project.
type keyRef struct {
	name, project string
}

func (r *keyRef) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.name, "name", "", "the key's name, instead of its ID (needs --project)")
	projectFlag(cmd, &r.project)
}

// args accepts KEY_ID plus up to rest more arguments, or only the rest when
// the key is named by --name.
func (r *keyRef) args(rest int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if r.name != "" {
			if len(args) > rest {
				return fmt.Errorf("the key is named by --name: want at most %d argument(s), got %d", rest, len(args))
			}
			return nil
		}
		if len(args) == 0 {
			return errors.New("give the key's ID, or --name and --project")
		}
		if len(args) > 1+rest {
			return fmt.Errorf("want at most %d argument(s), got %d", 1+rest, len(args))
		}
		return nil
	}
}

// resolveKey returns the client, the key's ID and the arguments after it.
func (c *cli) resolveKey(ctx context.Context, r keyRef, args []string) (*client.Client, string, []string, error) {
	cl, err := c.client(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	if r.name == "" {
		if args[0] == "" {
			return nil, "", nil, errors.New("the key ID is empty")
		}
		return cl, args[0], args[1:], nil
	}
	if r.project == "" {
		return nil, "", nil, errors.New("--name needs --project")
	}
	k, err := cl.KMSKeyByName(ctx, r.project, r.name)
	if err != nil {
		return nil, "", nil, err
	}
	return cl, k.ID, args, nil
}

// readInput reads the data of a KMS call: the file named by the argument or
// --in ("-" is standard input), else standard input. More than max bytes is
// an error, before anything is sent.
func (c *cli) readInput(rest []string, in string, max int) ([]byte, error) {
	name := in
	if len(rest) > 0 {
		if in != "" {
			return nil, errors.New("give the input as an argument or as --in, not both")
		}
		name = rest[0]
	}
	var r io.Reader = c.stdin
	label := "standard input"
	if name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, label = f, name
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", label, err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s holds more than %d bytes, the most one KMS request takes", label, max)
	}
	return b, nil
}

// decodeB64 reads base64 text, ignoring surrounding and line-break whitespace.
func decodeB64(what string, b []byte) ([]byte, error) {
	s := string(bytes.Join(bytes.Fields(b), nil))
	out, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		out, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("the %s is not base64", what)
	}
	return out, nil
}

// maxB64Input bounds base64 input: the largest ciphertext, encoded, with room for line breaks.
const maxB64Input = 4 * (kms.MaxData + kms.CiphertextOverhead)

var kmsKeyHeader = []string{"NAME", "USAGE", "ALGORITHM", "VERSION", "STATUS", "ID", "DESCRIPTION"}

func kmsKeyRow(k client.KMSKey) []string {
	status := "enabled"
	if k.IsDisabled {
		status = "disabled"
	}
	return []string{k.Name, k.KeyUsage, k.EncryptionAlgorithm, strconv.Itoa(k.Version), status, k.ID, k.Description}
}

func (c *cli) printKey(k client.KMSKey) error {
	return c.print(k, kmsKeyHeader, [][]string{kmsKeyRow(k)})
}

// printLine writes s (base64) as one line, or v as JSON with --output json.
func (c *cli) printLine(s string, v any) error {
	if c.output == "json" {
		return c.print(v, nil, nil)
	}
	_, err := fmt.Fprintln(c.stdout, s)
	return err
}

func (c *cli) newKMSCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "kms", Short: "Encrypt, decrypt, sign and verify with keys that never leave the server"}
	cmd.AddCommand(c.newKMSKeysCmd(), c.newKMSEncryptCmd(), c.newKMSDecryptCmd(), c.newKMSSignCmd(), c.newKMSVerifyCmd(),
		c.newKMSPublicKeyCmd(), c.newKMSSigningAlgorithmsCmd(), c.newKMSRewrapCmd())
	return cmd
}

func (c *cli) newKMSKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create, list, get, rotate and delete KMS keys"}

	var nk client.KMSNewKey
	create := &cobra.Command{
		Use:   "create --project ID --name NAME [--usage encrypt-decrypt|sign-verify] [--algorithm A]",
		Short: "Create a key (material generated on the server, never shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nk.ProjectID == "" || nk.Name == "" {
				return errors.New("--project and --name are required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			k, err := cl.KMSCreateKey(cmd.Context(), nk)
			if err != nil {
				return err
			}
			return c.printKey(k)
		},
	}
	projectFlag(create, &nk.ProjectID)
	create.Flags().StringVar(&nk.Name, "name", "", "key name (a slug, at most 32 characters)")
	create.Flags().StringVar(&nk.Description, "description", "", "description")
	create.Flags().StringVar(&nk.KeyUsage, "usage", "encrypt-decrypt", "encrypt-decrypt or sign-verify")
	create.Flags().StringVar(&nk.EncryptionAlgorithm, "algorithm", "", "aes-256-gcm (default for encrypt-decrypt), aes-128-gcm, rsa-4096 or ecc-nist-p256")

	var project string
	var lo client.KMSListOptions
	list := &cobra.Command{
		Use:   "list --project ID [--search S] [--limit N] [--offset N]",
		Short: "List a project's keys by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			keys, total, err := cl.KMSKeys(cmd.Context(), project, lo)
			if err != nil {
				return err
			}
			rows := make([][]string, len(keys))
			for i, k := range keys {
				rows[i] = kmsKeyRow(k)
			}
			if keys == nil {
				keys = []client.KMSKey{}
			}
			if err := c.print(struct {
				Keys       []client.KMSKey `json:"keys"`
				TotalCount int             `json:"totalCount"`
			}{keys, total}, kmsKeyHeader, rows); err != nil {
				return err
			}
			if c.output != "json" && lo.Offset+len(keys) < total {
				fmt.Fprintf(c.stderr, "lockbox: showing %d of %d keys from offset %d: use --offset and --limit for more\n", len(keys), total, lo.Offset)
			}
			return nil
		},
	}
	projectFlag(list, &project)
	list.Flags().StringVar(&lo.Search, "search", "", "only keys whose name contains this")
	list.Flags().IntVar(&lo.Limit, "limit", 0, "at most this many keys (1-100; default 100)")
	list.Flags().IntVar(&lo.Offset, "offset", 0, "skip this many keys")

	var ref keyRef
	get := &cobra.Command{
		Use:   "get (KEY_ID | --name NAME --project ID)",
		Short: "Show a key",
		Args:  ref.args(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ref.name != "" && ref.project == "" {
				return errors.New("--name needs --project")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			var k client.KMSKey
			if ref.name != "" {
				k, err = cl.KMSKeyByName(cmd.Context(), ref.project, ref.name)
			} else {
				k, err = cl.KMSKey(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			return c.printKey(k)
		},
	}
	ref.flags(get)

	// byID runs one call on the key named by the only argument.
	byID := func(call func(cl *client.Client, ctx context.Context, id string) (client.KMSKey, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			k, err := call(cl, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.printKey(k)
		}
	}
	var yes bool
	del := &cobra.Command{
		Use:   "delete KEY_ID --yes",
		Short: "Delete a key: nothing it encrypted can ever be decrypted again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return errors.New("deleting a key destroys it: nothing it encrypted can ever be decrypted again; pass --yes to delete it")
			}
			return byID((*client.Client).KMSDeleteKey)(cmd, args)
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm that the key's ciphertexts become undecryptable")

	rotate := &cobra.Command{
		Use:   "rotate KEY_ID",
		Short: "Add a version to an encryption key; older ciphertexts still decrypt (lockbox only)",
		Args:  cobra.ExactArgs(1),
		RunE:  byID((*client.Client).KMSRotateKey),
	}

	var yesRetire bool
	retire := &cobra.Command{
		Use:   "retire-version KEY_ID VERSION --yes",
		Short: "Destroy an older version once its ciphertexts are rewrapped; they never decrypt again (lockbox only)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.Atoi(args[1])
			if err != nil || v < 1 {
				return fmt.Errorf("VERSION must be a positive whole number, not %q", args[1])
			}
			if !yesRetire {
				return errors.New("retiring a version destroys it: nothing it encrypted can ever be decrypted again; rewrap first (lockbox kms rewrap), then pass --yes")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			k, err := cl.KMSRetireVersion(cmd.Context(), args[0], v)
			if err != nil {
				return err
			}
			return c.printKey(k)
		},
	}
	retire.Flags().BoolVar(&yesRetire, "yes", false, "confirm that the version's ciphertexts become undecryptable")

	cmd.AddCommand(create, list, get, del, rotate, retire)
	return cmd
}

// readCiphertext resolves the key named by f or args and reads the base64
// ciphertext from the FILE argument, --in or standard input (decrypt, rewrap).
func (c *cli) readCiphertext(cmd *cobra.Command, f ioFlags, args []string) (*client.Client, string, []byte, error) {
	cl, id, rest, err := c.resolveKey(cmd.Context(), f.ref, args)
	if err != nil {
		return nil, "", nil, err
	}
	in, err := c.readInput(rest, f.in, maxB64Input)
	if err != nil {
		return nil, "", nil, err
	}
	ct, err := decodeB64("ciphertext", in)
	return cl, id, ct, err
}

func (c *cli) newKMSRewrapCmd() *cobra.Command {
	var f ioFlags
	cmd := &cobra.Command{
		Use:   "rewrap (KEY_ID | --name NAME --project ID) [FILE]",
		Short: "Re-encrypt a base64 ciphertext from FILE or standard input under the key's newest version; the plaintext stays on the server (lockbox only)",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, ct, err := c.readCiphertext(cmd, f, args)
			if err != nil {
				return err
			}
			out, version, err := cl.KMSRewrap(cmd.Context(), id, ct)
			if err != nil {
				return err
			}
			s := base64.StdEncoding.EncodeToString(out)
			return c.printLine(s, map[string]any{"keyId": id, "ciphertext": s, "version": version})
		},
	}
	cmd.Args = f.ref.args(1)
	f.flags(cmd, "")
	return cmd
}

// ioFlags are the input flags of encrypt, decrypt, sign and verify.
type ioFlags struct {
	ref keyRef
	in  string
	raw bool
}

func (f *ioFlags) flags(cmd *cobra.Command, rawHelp string) {
	f.ref.flags(cmd)
	cmd.Flags().StringVar(&f.in, "in", "", "read the input from this file (default: the FILE argument, else standard input)")
	if rawHelp != "" {
		cmd.Flags().BoolVar(&f.raw, "raw", false, rawHelp)
	}
}

func (c *cli) newKMSEncryptCmd() *cobra.Command {
	var f ioFlags
	cmd := &cobra.Command{
		Use:   "encrypt (KEY_ID | --name NAME --project ID) [FILE]",
		Short: fmt.Sprintf("Encrypt FILE or standard input (at most %d bytes); prints the base64 ciphertext", kms.MaxData),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, rest, err := c.resolveKey(cmd.Context(), f.ref, args)
			if err != nil {
				return err
			}
			pt, err := c.readInput(rest, f.in, kms.MaxData)
			if err != nil {
				return err
			}
			ct, err := cl.KMSEncrypt(cmd.Context(), id, pt)
			clear(pt)
			if err != nil {
				return err
			}
			s := base64.StdEncoding.EncodeToString(ct)
			return c.printLine(s, map[string]string{"keyId": id, "ciphertext": s})
		},
	}
	cmd.Args = f.ref.args(1)
	f.flags(cmd, "")
	return cmd
}

func (c *cli) newKMSDecryptCmd() *cobra.Command {
	var f ioFlags
	cmd := &cobra.Command{
		Use:   "decrypt (KEY_ID | --name NAME --project ID) [FILE] [--raw]",
		Short: "Decrypt a base64 ciphertext from FILE or standard input; prints the plaintext in base64, or as is with --raw",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, ct, err := c.readCiphertext(cmd, f, args)
			if err != nil {
				return err
			}
			pt, err := cl.KMSDecrypt(cmd.Context(), id, ct)
			if err != nil {
				return err
			}
			defer clear(pt)
			if f.raw {
				_, err := c.stdout.Write(pt)
				return err
			}
			s := base64.StdEncoding.EncodeToString(pt)
			return c.printLine(s, map[string]string{"keyId": id, "plaintext": s})
		},
	}
	cmd.Args = f.ref.args(1)
	f.flags(cmd, "write the plaintext's bytes as they are, not base64")
	return cmd
}

// signFlags are sign's and verify's.
type signFlags struct {
	ioFlags
	algorithm string
	digest    bool
}

func (f *signFlags) flags(cmd *cobra.Command, rawHelp string) {
	f.ioFlags.flags(cmd, rawHelp)
	cmd.Flags().StringVar(&f.algorithm, "algorithm", "", "signing algorithm, e.g. RSASSA_PSS_SHA_256 or ECDSA_SHA_256 (see signing-algorithms)")
	cmd.Flags().BoolVar(&f.digest, "digest", false, "the input is already a digest made with the algorithm's hash (raw bytes, e.g. of openssl dgst -binary)")
}

func (f *signFlags) check() error {
	if f.algorithm == "" {
		return errors.New("--algorithm is required, e.g. RSASSA_PSS_SHA_256 or ECDSA_SHA_256 (lockbox kms signing-algorithms KEY_ID lists a key's)")
	}
	return nil
}

func (c *cli) newKMSSignCmd() *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "sign (KEY_ID | --name NAME --project ID) --algorithm ALG [FILE] [--digest] [--raw]",
		Short: "Sign FILE or standard input; prints the base64 signature, or its bytes with --raw",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			cl, id, rest, err := c.resolveKey(cmd.Context(), f.ref, args)
			if err != nil {
				return err
			}
			data, err := c.readInput(rest, f.in, kms.MaxData)
			if err != nil {
				return err
			}
			sig, err := cl.KMSSign(cmd.Context(), id, f.algorithm, data, f.digest)
			if err != nil {
				return err
			}
			if f.raw {
				_, err := c.stdout.Write(sig)
				return err
			}
			s := base64.StdEncoding.EncodeToString(sig)
			return c.printLine(s, map[string]string{"keyId": id, "signature": s, "signingAlgorithm": f.algorithm})
		},
	}
	cmd.Args = f.ref.args(1)
	f.flags(cmd, "write the signature's bytes, not base64 (for openssl dgst -signature)")
	return cmd
}

func (c *cli) newKMSVerifyCmd() *cobra.Command {
	var f signFlags
	var sigB64, sigFile string
	cmd := &cobra.Command{
		Use:   "verify (KEY_ID | --name NAME --project ID) --algorithm ALG (--signature B64 | --signature-file F) [FILE] [--digest]",
		Short: "Verify a signature of FILE or standard input; prints valid or invalid, and exits 1 when invalid",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if (sigB64 == "") == (sigFile == "") {
				return errors.New("give the signature with --signature (base64) or --signature-file, one of them")
			}
			sig, err := signatureFrom(sigB64, sigFile)
			if err != nil {
				return err
			}
			cl, id, rest, err := c.resolveKey(cmd.Context(), f.ref, args)
			if err != nil {
				return err
			}
			data, err := c.readInput(rest, f.in, kms.MaxData)
			if err != nil {
				return err
			}
			ok, err := cl.KMSVerify(cmd.Context(), id, f.algorithm, data, sig, f.digest)
			if err != nil {
				return err
			}
			word := "valid"
			if !ok {
				word = "invalid"
			}
			if err := c.printLine(word, map[string]any{"keyId": id, "signatureValid": ok, "signingAlgorithm": f.algorithm}); err != nil {
				return err
			}
			if !ok {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Args = f.ref.args(1)
	f.flags(cmd, "")
	cmd.Flags().StringVar(&sigB64, "signature", "", "the signature, base64")
	cmd.Flags().StringVar(&sigFile, "signature-file", "", "a file holding the signature: base64, or the bytes sign --raw writes")
	return cmd
}

// signatureFrom reads --signature or --signature-file. A file is base64 text
// if it decodes as such, else the signature's bytes: a DER or RSA signature
// is never all base64 characters.
func signatureFrom(b64, file string) ([]byte, error) {
	if file == "" {
		return decodeB64("--signature", []byte(b64))
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(maxB64Input)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(b) > maxB64Input {
		return nil, fmt.Errorf("%s is too large to be a signature", file)
	}
	if sig, err := decodeB64("signature", b); err == nil && len(sig) > 0 {
		return sig, nil
	}
	return b, nil
}

func (c *cli) newKMSPublicKeyCmd() *cobra.Command {
	var ref keyRef
	var der bool
	cmd := &cobra.Command{
		Use:   "public-key (KEY_ID | --name NAME --project ID) [--der]",
		Short: "Print a signing key's public key as PEM (or DER bytes with --der)",
		Args:  ref.args(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, _, err := c.resolveKey(cmd.Context(), ref, args)
			if err != nil {
				return err
			}
			pub, err := cl.KMSPublicKey(cmd.Context(), id)
			if err != nil {
				return err
			}
			switch {
			case c.output == "json":
				return c.print(map[string]string{"keyId": id, "publicKey": base64.StdEncoding.EncodeToString(pub)}, nil, nil)
			case der:
				_, err = c.stdout.Write(pub)
			default:
				err = pem.Encode(c.stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: pub})
			}
			return err
		},
	}
	ref.flags(cmd)
	cmd.Flags().BoolVar(&der, "der", false, "write the DER SubjectPublicKeyInfo bytes instead of PEM")
	return cmd
}

func (c *cli) newKMSSigningAlgorithmsCmd() *cobra.Command {
	var ref keyRef
	cmd := &cobra.Command{
		Use:   "signing-algorithms (KEY_ID | --name NAME --project ID)",
		Short: "List the signing algorithms a key can use",
		Args:  ref.args(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, id, _, err := c.resolveKey(cmd.Context(), ref, args)
			if err != nil {
				return err
			}
			algs, err := cl.KMSSigningAlgorithms(cmd.Context(), id)
			if err != nil {
				return err
			}
			rows := make([][]string, len(algs))
			for i, a := range algs {
				rows[i] = []string{a}
			}
			return c.print(algs, []string{"SIGNING ALGORITHM"}, rows)
		},
	}
	ref.flags(cmd)
	return cmd
}
