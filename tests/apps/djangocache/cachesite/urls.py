from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("notes/<slug:key>", views.note),
    path("visits", views.visits),
]
