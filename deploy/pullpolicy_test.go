package deploy

import (
	"os"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestK8sImagesPulledWhenTheTagMoves: the kustomization ships the
// `latest` tag. With `imagePullPolicy: IfNotPresent` a node that already
// had an older `latest` ran it, so after a rollout pods on different nodes
// ran different versions, and a node never pulled a fix. Left unset,
// Kubernetes pulls `latest` every time and a pinned release tag once.
func TestK8sImagesPulledWhenTheTagMoves(t *testing.T) {
	b, err := os.ReadFile("k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Images []struct {
			Name   string `yaml:"name"`
			NewTag string `yaml:"newTag"`
		} `yaml:"images"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, im := range k.Images {
		tags[im.Name] = im.NewTag
	}
	objs, files := readK8s(t)
	seen := 0
	for i, o := range objs {
		for _, c := range o.Spec.Template.Spec.Containers {
			tag, ok := tags[c.Image]
			if !ok {
				continue
			}
			seen++
			if (tag == "" || tag == "latest") && c.ImagePullPolicy != "" && c.ImagePullPolicy != "Always" {
				t.Errorf("%s %s: imagePullPolicy %s with the tag %q: a node keeps the %q it pulled first; leave it unset (Always for latest, IfNotPresent for a release tag)",
					files[i], c.Name, c.ImagePullPolicy, tag, tag)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no container runs an image the kustomization sets")
	}
}
