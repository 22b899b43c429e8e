{{/*
Names. Every name derives from the release (and nameOverride /
fullnameOverride), truncated to 63 characters (a DNS label). Cluster-scoped
names also carry the release namespace, so that two releases of the same
name in different namespaces never share a ClusterRole.
*/}}

{{- define "contour-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "contour-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* ClusterRole and ClusterRoleBinding: <fullname>:<release namespace>. */}}
{{- define "contour-operator.clusterName" -}}
{{- printf "%s:%s" (include "contour-operator.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The operator's leader Lease (--leader-election-id); the Role grants get/update on it only. */}}
{{- define "contour-operator.leaseName" -}}
contour-operator
{{- end -}}

{{- define "contour-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "contour-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "contour-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "contour-operator.releaseLabels" -}}
helm.sh/chart: {{ include "contour-operator.chart" . }}
app.kubernetes.io/name: {{ include "contour-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: contour
{{- end -}}

{{/* Labels of the operator's own objects. */}}
{{- define "contour-operator.labels" -}}
{{ include "contour-operator.releaseLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "contour-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) -}}
{{- end -}}

{{- define "contour-operator.contourImage" -}}
{{- default (printf "ghcr.io/contour-rs/contour:v%s" .Chart.AppVersion) .Values.contourImage -}}
{{- end -}}
