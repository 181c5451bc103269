{{- /*
What every braintrust_ops container shares: the web image, the environment Sefaria's settings need
(the same envFrom and local_settings.py mount as Sefaria's other CronJobs), the keys its command
needs, and the CronJob's schedule for the command's Sentry Cron monitor.
Arguments: root (the chart's context), schedule; braintrust and anthropic: whether the command
calls that service, so a container holds only the keys its command needs; backupDir (optional:
where backup_logs writes, a mounted emptyDir named "backup").

Both Secrets are optional: without one the command starts and stops at once, naming the variable it
lacks (exit 1), where a required one would hold the pod in CreateContainerConfigError until the
Job's deadline.
*/ -}}
{{- /*
Helpers of the braintrust_ops CronJobs. Every name starts "sefaria." to sit in the chart's namespace
(helm-chart/sefaria/templates/_helpers.tpl names its helpers sefaria.*), then "braintrust" or
"secrets.braintrust", which the chart does not use: Helm keeps the last template defined under a name
without a word, so a clash would silently replace one of the chart's helpers.
*/ -}}

{{- /*
The Braintrust Secret's name: secrets.braintrust.ref, or braintrust-secret-<deployEnv> when the ref is
empty, blank or absent, the way the chart's sefaria.secrets.* helpers fall back to <name>-<deployEnv>
(helm-chart/sefaria/templates/_helpers.tpl, e.g. sefaria.secrets.geminiApiKey). Its keys are the
variables they fill: BRAINTRUST_API_KEY and BRAINTRUST_PROJECT_ID.
*/ -}}
{{- define "sefaria.secrets.braintrust" -}}
{{- $braintrust := get (.Values.secrets | default dict) "braintrust" | default dict -}}
{{- $ref := get $braintrust "ref" | default "" | toString | trim -}}
{{- if $ref -}}
{{- $ref -}}
{{- else -}}
braintrust-secret-{{ .Values.deployEnv }}
{{- end -}}
{{- end -}}

{{- define "sefaria.braintrust.container" -}}
{{- $root := .root -}}
image: "{{ $root.Values.web.containerImage.imageRegistry }}:{{ $root.Values.web.containerImage.tag }}"
workingDir: /app
env:
- name: REDIS_HOST
  value: "redis-{{ $root.Values.deployEnv }}"
- name: NODEJS_HOST
  value: "node-{{ $root.Values.deployEnv }}-{{ $root.Release.Revision }}"
- name: VARNISH_HOST
  value: "varnish-{{ $root.Values.deployEnv }}-{{ $root.Release.Revision }}"
{{- if .braintrust }}
# The Braintrust Secret's two keys, named for the variables they fill.
- name: BRAINTRUST_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "sefaria.secrets.braintrust" $root }}
      key: BRAINTRUST_API_KEY
      optional: true
- name: BRAINTRUST_PROJECT_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "sefaria.secrets.braintrust" $root }}
      key: BRAINTRUST_PROJECT_ID
      optional: true
{{- end }}
- name: BRAINTRUST_OPS_CRON_SCHEDULE
  value: {{ .schedule | quote }}
{{- with .backupDir }}
- name: BRAINTRUST_OPS_BACKUP_DIR
  value: {{ . | quote }}
{{- end }}
envFrom:
{{- if .anthropic }}
# Anthropic's key as the tasks pods read it (templates/rollout/task.yaml): the Secret named by
# tasks.anthropicSecretRef (values.yaml default anthropic-api-key), loaded whole and optional, holding
# ANTHROPIC_API_KEY. Before the local settings, in the order task.yaml loads them.
- secretRef:
    name: {{ required "tasks.anthropicSecretRef is required: the Secret holding ANTHROPIC_API_KEY, as the tasks pods read it" (get ($root.Values.tasks | default dict) "anthropicSecretRef") }}
    optional: true
{{- end }}
- secretRef:
    name: {{ $root.Values.secrets.localSettings.ref }}
    optional: true
- secretRef:
    name: local-settings-secrets-{{ $root.Values.deployEnv }}
    optional: true
- configMapRef:
    name: local-settings-{{ $root.Values.deployEnv }}
volumeMounts:
- mountPath: /app/sefaria/local_settings.py
  name: local-settings
  subPath: local_settings.py
  readOnly: true
{{- with .backupDir }}
- mountPath: {{ . }}
  name: backup
{{- end }}
{{- end -}}
