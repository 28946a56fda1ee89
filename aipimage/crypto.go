package aipimage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/hkdf"
	"golang.org/x/crypto/scrypt"
)

// Default scrypt cost: 32 MiB and about a tenth of a second per set key.
const (
	defaultScryptN = 1 << 15
	scryptR        = 8
	scryptP        = 1
	nonceLen       = 12
	tagLen         = 16
)

// newEncryption returns parameters for a new chain, or the parent's so
// that a set shares one salt and opening it stretches the passphrase once.
func newEncryption(parent *Encryption, n int) *Encryption {
	if parent != nil {
		e := *parent
		e.KeyCheck = nil
		return &e
	}
	if n == 0 {
		n = defaultScryptN
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	return &Encryption{KDF: "scrypt", Salt: salt, N: n, R: scryptR, P: scryptP}
}

// keyring caches set keys by KDF parameters, so a chain whose files share a
// salt runs scrypt once.
type keyring struct {
	passphrase []byte
	mu         sync.Mutex
	setKeys    map[string][]byte
}

func (k *keyring) setKey(e *Encryption) ([]byte, error) {
	id := fmt.Sprintf("%x/%d/%d/%d", e.Salt, e.N, e.R, e.P)
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.setKeys[id]; ok {
		return key, nil
	}
	key, err := scrypt.Key(k.passphrase, e.Salt, e.N, e.R, e.P, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: scrypt: %v", ErrUnsupported, err)
	}
	if k.setKeys == nil {
		k.setKeys = map[string][]byte{}
	}
	k.setKeys[id] = key
	return key, nil
}

// fileCipher derives the block key of one point from the set key and
// returns the AEAD plus the key check value stored in the header.
func fileCipher(setKey []byte, pointID string) (cipher.AEAD, []byte, error) {
	r := hkdf.New(sha256.New, setKey, idBytes(pointID), []byte("standbykit aipimage v1 block key"))
	key := make([]byte, 32)
	if _, err := io.ReadFull(r, key); err != nil {
		return nil, nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("standbykit aipimage v1 key check"))
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, mac.Sum(nil), nil
}

// unlock checks the passphrase against a file's key check value.
func (k *keyring) unlock(info *PointInfo) (cipher.AEAD, error) {
	if len(k.passphrase) == 0 {
		return nil, ErrPassphraseRequired
	}
	setKey, err := k.setKey(info.Encryption)
	if err != nil {
		return nil, err
	}
	aead, check, err := fileCipher(setKey, info.PointID)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(check, info.Encryption.KeyCheck) {
		return nil, ErrWrongPassphrase
	}
	return aead, nil
}

// blockAAD binds a ciphertext to its file, disk, block and flags, so blocks
// cannot be swapped between places without detection.
func blockAAD(dst []byte, pointID []byte, disk int, block int64, flags uint16) []byte {
	dst = append(dst[:0], pointID...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(disk))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(block))
	return binary.LittleEndian.AppendUint16(dst, flags)
}
