package server

import (
	"encoding/base64"
	"os"
)

// caBundle is a PEM file's content as an APIService caBundle.
func caBundle(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(data), nil
}
