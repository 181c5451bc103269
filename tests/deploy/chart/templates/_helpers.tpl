{{- /*
Stand-ins for the helpers of helm-chart/sefaria/templates/_helpers.tpl (master 4c0ecc1e) that the
braintrust_ops templates include: sefaria.labels, and what it is built from. They render the same
labels: helm.sh/chart, app.kubernetes.io/{name,instance,version,managed-by}.
*/ -}}
{{- define "sefaria.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sefaria.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sefaria.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sefaria.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sefaria.labels" -}}
helm.sh/chart: {{ include "sefaria.chart" . }}
{{ include "sefaria.selectorLabels" . }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
